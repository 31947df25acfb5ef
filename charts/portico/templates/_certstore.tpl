{{/* certstore's config file, before the operator's extra settings. */}}
{{- define "portico.certstoreManagedConfig" -}}
{{- $v := .root.Values.certstore -}}
{{- $paths := include "portico.paths" . | fromYaml -}}
{{ include "portico.commonConfig" . }}
listen: {{ printf ":%v" $v.ports.grpc | quote }}
{{ include "portico.serverTLSConfig" . }}
{{ include "portico.storeConfig" . }}
secrets-backend: {{ $v.secretsBackend }}
{{- if eq $v.secretsBackend "local" }}
kek-file: {{ $paths.kek }}
{{- else }}
{{- if not $v.aws.region }}
{{- fail "certstore.aws.region is required with certstore.secretsBackend aws" }}
{{- end }}
aws-secret-prefix: {{ $v.aws.secretPrefix | quote }}
{{- with $v.aws.endpoint }}
aws-endpoint: {{ . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "portico.certstoreEnv" -}}
{{ include "portico.redisPasswordEnv" . }}
{{- if eq .root.Values.certstore.secretsBackend "aws" }}
# The AWS SDK's standard setting; credentials come from IRSA (the service account's role).
- name: AWS_REGION
  value: {{ .root.Values.certstore.aws.region | quote }}
{{- end }}
{{- end -}}

{{- define "portico.certstoreVolumes" -}}
{{- if eq .root.Values.certstore.secretsBackend "local" -}}
- name: kek
  secret:
    secretName: {{ include "portico.kekSecretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .root.Values.certstore.kek.key }}
        path: keyring
{{- end -}}
{{- end -}}

{{- define "portico.certstoreMounts" -}}
{{- if eq .root.Values.certstore.secretsBackend "local" -}}
- name: kek
  mountPath: /etc/portico/kek
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "portico.kekSecretName" -}}
{{- default (printf "%s-kek" (include "portico.fullname" .root)) .root.Values.certstore.kek.existingSecret -}}
{{- end -}}
