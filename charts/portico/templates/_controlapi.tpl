{{/* controlapi's config file, before the operator's extra settings. */}}
{{- define "portico.controlapiManagedConfig" -}}
{{- $v := .root.Values.controlapi -}}
{{- $edge := .root.Values.edge -}}
{{- $paths := include "portico.paths" . | fromYaml -}}
{{ include "portico.commonConfig" . }}
listen: {{ printf ":%v" $v.ports.grpc | quote }}
http-listen: {{ printf ":%v" $v.ports.http | quote }}
{{- if $v.tls.enabled }}
tls-cert: {{ $paths.apiTLSCert }}
tls-key: {{ $paths.apiTLSKey }}
{{- else }}
behind-tls-proxy: true
{{- end }}
{{ include "portico.clientConfig" (dict "root" .root "target" "certstore") }}
{{ include "portico.clientConfig" (dict "root" .root "target" "notary") }}
{{ include "portico.storeConfig" . }}
admin-key-file: {{ $paths.adminKey }}
{{- with $edge.addresses }}
edge-addresses: {{ join "," . | quote }}
{{- end }}
{{- with $edge.cnameTarget }}
edge-cname: {{ . | quote }}
{{- end }}
{{- with .root.Values.delegation.zone }}
delegation-zone: {{ . | quote }}
{{- end }}
{{- with $v.corsAllowedOrigins }}
cors-allowed-origins: {{ join "," . | quote }}
{{- end }}
{{- with $v.upstreamAllow }}
upstream-allow: {{ join "," . | quote }}
{{- end }}
{{- end -}}

{{- define "portico.controlapiEnv" -}}
{{ include "portico.redisPasswordEnv" . }}
{{- end -}}

{{- define "portico.controlapiVolumes" -}}
- name: admin-key
  secret:
    secretName: {{ include "portico.adminKeySecretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .root.Values.controlapi.adminKey.key }}
        path: admin-key
{{- if .root.Values.controlapi.tls.enabled }}
- name: api-tls
  secret:
    secretName: {{ required "controlapi.tls.secretName is required with controlapi.tls.enabled" .root.Values.controlapi.tls.secretName }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- end -}}

{{- define "portico.controlapiMounts" -}}
- name: admin-key
  mountPath: /etc/portico/admin
  readOnly: true
{{- if .root.Values.controlapi.tls.enabled }}
- name: api-tls
  mountPath: /etc/portico/api-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "portico.adminKeySecretName" -}}
{{- default (printf "%s-admin-key" (include "portico.fullname" .root)) .root.Values.controlapi.adminKey.existingSecret -}}
{{- end -}}
