{{/*
Names, labels and the pieces every component shares. A component is one of gateway,
certstore, notary, controlapi; helpers that need one take a dict with "root" (the top
context) and "component" (its name).
*/}}

{{- define "portico.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "portico.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of a component's objects: <fullname>-<component>. */}}
{{- define "portico.componentName" -}}
{{- printf "%s-%s" (include "portico.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "portico.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portico.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "portico.labels" -}}
{{ include "portico.selectorLabels" . }}
app.kubernetes.io/part-of: portico
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{/* Labels of the chart's objects that belong to no one component (the mTLS CA). */}}
{{- define "portico.sharedLabels" -}}
{{ include "portico.labels" (dict "root" . "component" "shared") }}
{{- end -}}

{{/* A podSelector for one component's pods, for NetworkPolicy peers. */}}
{{- define "portico.peer" -}}
- podSelector:
    matchLabels:
      {{- include "portico.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "portico.image" -}}
{{- $img := index .root.Values .component "image" -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "portico.serviceAccountName" -}}
{{- $sa := index .root.Values .component "serviceAccount" -}}
{{- if $sa.create -}}
{{- default (include "portico.componentName" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding a component's mTLS certificate, key and CA (tls.crt, tls.key, ca.crt). */}}
{{- define "portico.tlsSecretName" -}}
{{- $name := "" -}}
{{- if eq .root.Values.mtls.mode "existingSecrets" -}}
{{- $name = index .root.Values.mtls.existingSecrets .component -}}
{{- end -}}
{{- default (printf "%s-tls" (include "portico.componentName" .)) $name -}}
{{- end -}}

{{/* The cluster DNS name of a component's Service. */}}
{{- define "portico.serviceHost" -}}
{{- printf "%s.%s.svc.%s" (include "portico.componentName" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* Where the mounted files live inside the containers. */}}
{{- define "portico.paths" -}}
config: /etc/portico/config/config.yaml
tlsCert: /etc/portico/tls/tls.crt
tlsKey: /etc/portico/tls/tls.key
tlsCA: /etc/portico/tls/ca.crt
kek: /etc/portico/kek/keyring
adminKey: /etc/portico/admin/admin-key
acmeAccountKey: /etc/portico/acme/account-key.pem
apiTLSCert: /etc/portico/api-tls/tls.crt
apiTLSKey: /etc/portico/api-tls/tls.key
{{- end -}}

{{/*
The settings every component's config file shares: listeners bound on all addresses
(the pod network; NetworkPolicy decides who reaches them), logging. Admin listens on all
addresses only when metrics are scraped; otherwise on loopback.
*/}}
{{- define "portico.commonConfig" -}}
{{- $v := index .root.Values .component -}}
{{- $c := dict
  "health-listen" (printf ":%v" $v.ports.health)
  "log-level" (default .root.Values.log.level $v.logLevel)
  "log-format" .root.Values.log.format
-}}
{{- if .root.Values.metrics.enabled -}}
{{- $_ := set $c "admin-listen" (printf ":%v" $v.ports.admin) -}}
{{- else -}}
{{- $_ := set $c "admin-listen" (printf "127.0.0.1:%v" $v.ports.admin) -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* This server's own mTLS files (-tls-cert, -tls-key, -tls-ca). */}}
{{- define "portico.serverTLSConfig" -}}
{{- $p := include "portico.paths" . | fromYaml -}}
tls-cert: {{ $p.tlsCert }}
tls-key: {{ $p.tlsKey }}
tls-ca: {{ $p.tlsCA }}
{{- end -}}

{{/*
A gRPC client's settings for reaching one service (-<target>-addr and -<target>-tls-*),
with the caller's own identity certificate. dict: root, target.
*/}}
{{- define "portico.clientConfig" -}}
{{- $p := include "portico.paths" . | fromYaml -}}
{{- $t := dict "root" .root "component" .target -}}
{{ .target }}-addr: {{ printf "dns:///%s:%v" (include "portico.serviceHost" $t) (index .root.Values .target "ports" "grpc") | quote }}
{{ .target }}-tls-cert: {{ $p.tlsCert }}
{{ .target }}-tls-key: {{ $p.tlsKey }}
{{ .target }}-tls-ca: {{ $p.tlsCA }}
{{- end -}}

{{/* The Redis settings (the password comes from a Secret through the environment). */}}
{{- define "portico.redisConfig" -}}
{{- $r := .root.Values.redis -}}
redis-addr: {{ $r.addr | quote }}
redis-tls: {{ $r.tls }}
redis-cluster: {{ $r.cluster }}
redis-db: {{ int $r.db }}
redis-key-prefix: {{ $r.keyPrefix | quote }}
redis-dial-timeout: {{ $r.dialTimeout | quote }}
{{- with $r.username }}
redis-username: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Where the state is kept: the Redis settings, or -store dynamodb and its settings. */}}
{{- define "portico.storeConfig" -}}
{{- if eq .root.Values.store "dynamodb" -}}
{{- $d := .root.Values.dynamodb -}}
{{- if not $d.region -}}
{{- fail "dynamodb.region is required with store dynamodb" -}}
{{- end -}}
store: dynamodb
dynamodb-region: {{ $d.region | quote }}
dynamodb-table-prefix: {{ $d.tablePrefix | quote }}
dynamodb-timeout: {{ $d.timeout | quote }}
{{- with $d.endpoint }}
dynamodb-endpoint: {{ . | quote }}
{{- end }}
{{- else -}}
{{ include "portico.redisConfig" . }}
{{- end -}}
{{- end -}}

{{/* The TCP ports of the Redis addresses, for egress rules. */}}
{{- define "portico.redisPorts" -}}
{{- $ports := list -}}
{{- range splitList "," .root.Values.redis.addr -}}
{{- $a := trim . -}}
{{- if $a -}}
{{- $ports = append $ports (int (regexReplaceAll "^.*:" $a "")) -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}

{{/*
The config file of a component: the chart's settings (dict "managed", YAML) plus the
operator's extra settings (<component>.config). An extra key the chart already sets is
refused, so that a structured value cannot be overridden behind its back.
*/}}
{{- define "portico.configFile" -}}
{{- $managed := .managed | fromYaml -}}
{{- $extra := index .root.Values .component "config" -}}
{{- range $k, $_ := $extra -}}
{{- if hasKey $managed $k -}}
{{- fail (printf "%s.config.%s: the chart sets %q itself; use the structured value instead (see values.yaml)" $.component $k $k) -}}
{{- end -}}
{{- end -}}
{{- toYaml (merge (dict) $managed $extra) -}}
{{- end -}}

{{- define "portico.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
A container's security context. dict: lowPort (bool: a port under 1024 is bound inside
the container, which then gets NET_BIND_SERVICE and nothing else).
*/}}
{{- define "portico.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
  {{- if .lowPort }}
  add: ["NET_BIND_SERVICE"]
  {{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}
