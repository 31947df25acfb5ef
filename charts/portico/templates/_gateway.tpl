{{/* The gateway's config file, before the operator's extra settings. */}}
{{- define "portico.gatewayManagedConfig" -}}
{{- $v := .root.Values.gateway -}}
{{- $notary := dict "root" .root "component" "notary" -}}
{{ include "portico.commonConfig" . }}
http-listen: {{ printf ":%v" $v.ports.http | quote }}
https-listen: {{ printf ":%v" $v.ports.https | quote }}
{{ include "portico.clientConfig" (dict "root" .root "target" "certstore") }}
notary-http-addr: {{ printf "%s:%v" (include "portico.serviceHost" $notary) .root.Values.notary.ports.http | quote }}
upstream: {{ required "gateway.upstream is required: the platform's backend (host:port, plain HTTP)" $v.upstream | quote }}
{{- /* Redirects to HTTPS name the port clients reach, not the container's. */}}
{{- if eq $v.kind "DaemonSet" }}
redirect-https-port: {{ int $v.hostPorts.https }}
{{- else }}
redirect-https-port: {{ int $v.service.ports.https }}
{{- end }}
{{- with $v.trustedProxies }}
trusted-proxies: {{ join "," . | quote }}
{{- end }}
{{- if $v.proxyProtocol.enabled }}
{{- if not $v.proxyProtocol.cidrs }}
{{- fail "gateway.proxyProtocol.enabled needs gateway.proxyProtocol.cidrs: the load balancer's addresses, the only sources whose PROXY header is believed" }}
{{- end }}
proxy-protocol-cidrs: {{ join "," $v.proxyProtocol.cidrs | quote }}
{{- end }}
{{- end -}}
