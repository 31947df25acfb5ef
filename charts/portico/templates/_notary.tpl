{{/* The notary's config file, before the operator's extra settings. */}}
{{- define "portico.notaryManagedConfig" -}}
{{- $v := .root.Values.notary -}}
{{- $edge := .root.Values.edge -}}
{{- $paths := include "portico.paths" . | fromYaml -}}
{{ include "portico.commonConfig" . }}
listen: {{ printf ":%v" $v.ports.grpc | quote }}
http-listen: {{ printf ":%v" $v.ports.http | quote }}
{{ include "portico.serverTLSConfig" . }}
{{ include "portico.clientConfig" (dict "root" .root "target" "certstore") }}
{{ include "portico.storeConfig" . }}
acme-directory: {{ $v.acme.directory | quote }}
acme-account-key-file: {{ $paths.acmeAccountKey }}
acme-key-type: {{ $v.acme.keyType }}
caa-identities: {{ join "," $v.acme.caaIdentities | quote }}
dns-resolvers: {{ join "," $v.dnsResolvers | quote }}
{{- with $v.acme.email }}
acme-email: {{ . | quote }}
{{- end }}
{{- with $v.acme.profile }}
acme-profile: {{ . | quote }}
{{- end }}
{{- if $v.acme.eab.kid }}
{{- if not $v.acme.eab.hmac.existingSecret }}
{{- fail "notary.acme.eab.kid needs notary.acme.eab.hmac.existingSecret: the CA's HMAC key for external account binding" }}
{{- end }}
acme-eab-kid: {{ $v.acme.eab.kid | quote }}
{{- end }}
{{- with $edge.addresses }}
edge-addresses: {{ join "," . | quote }}
{{- end }}
{{- with $edge.cnameTarget }}
edge-cname: {{ . | quote }}
{{- end }}
{{- with .root.Values.delegation }}
{{- if .zone }}
delegation-zone: {{ .zone | quote }}
delegation-writer: {{ .writer | quote }}
{{- if eq .writer "builtin" }}
{{- if not .nameservers }}
{{- fail "delegation.nameservers: the built-in DNS server needs the zone's NS names (as the parent zone delegates to them)" }}
{{- end }}
delegation-nameservers: {{ join "," .nameservers | quote }}
delegation-dns-listen: {{ printf ":%v" .dns.port | quote }}
delegation-ttl: {{ .ttl | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Whether the notary runs the built-in DNS server of the delegation zone. */}}
{{- define "portico.delegationDNS" -}}
{{- with .root.Values.delegation -}}
{{- if and .zone (eq .writer "builtin") -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{- define "portico.notaryEnv" -}}
{{ include "portico.redisPasswordEnv" . }}
{{- with .root.Values.notary.acme.eab }}
{{- if .kid }}
- name: PORTICO_ACME_EAB_HMAC
  valueFrom:
    secretKeyRef:
      name: {{ .hmac.existingSecret }}
      key: {{ .hmac.key }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The lego DNS provider's credentials, as its own environment variables. */}}
{{- define "portico.notaryEnvFrom" -}}
{{- with .root.Values.delegation }}
{{- if and .zone (ne .writer "builtin") .lego.envSecret }}
- secretRef:
    name: {{ .lego.envSecret }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "portico.notaryVolumes" -}}
- name: acme-account
  secret:
    secretName: {{ include "portico.acmeAccountSecretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .root.Values.notary.acme.accountKey.key }}
        path: account-key.pem
{{- end -}}

{{- define "portico.notaryMounts" -}}
- name: acme-account
  mountPath: /etc/portico/acme
  readOnly: true
{{- end -}}

{{- define "portico.acmeAccountSecretName" -}}
{{- default (printf "%s-acme-account" (include "portico.fullname" .root)) .root.Values.notary.acme.accountKey.existingSecret -}}
{{- end -}}

{{/* The TCP port of the ACME directory, for the notary's egress rule. */}}
{{- define "portico.acmePort" -}}
{{- $u := urlParse .root.Values.notary.acme.directory -}}
{{- if regexMatch ":[0-9]+$" $u.host -}}
{{- regexReplaceAll "^.*:" $u.host "" -}}
{{- else -}}
443
{{- end -}}
{{- end -}}
