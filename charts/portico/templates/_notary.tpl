{{/* The notary's config file, before the operator's extra settings. */}}
{{- define "portico.notaryManagedConfig" -}}
{{- $v := .root.Values.notary -}}
{{ include "portico.commonConfig" . }}
listen: {{ printf ":%v" $v.ports.grpc | quote }}
http-listen: {{ printf ":%v" $v.ports.http | quote }}
{{ include "portico.serverTLSConfig" . }}
{{ include "portico.clientConfig" (dict "root" .root "target" "certstore") }}
{{ include "portico.redisConfig" . }}
{{- end -}}

{{- define "portico.notaryEnv" -}}
{{ include "portico.redisPasswordEnv" . }}
{{- end -}}
