{{/*
The pod template every workload uses. dict:
  root, component
  ports:   list of dicts {name, port, hostPort (optional), protocol (optional, TCP)} the
           container listens on
  env:     YAML list of extra EnvVars (the secrets), may be empty
  envFrom: YAML list of EnvFromSources, may be empty
  volumes: YAML list of extra volumes, mounts: YAML list of their mounts
  config:  the rendered config file, hashed into an annotation so a change rolls the pods
*/}}
{{- define "portico.podTemplate" -}}
{{- $root := .root -}}
{{- $v := index $root.Values .component -}}
{{- $ctx := dict "root" $root "component" .component -}}
{{- $paths := include "portico.paths" $ctx | fromYaml -}}
{{- $env := trim (default "" .env) -}}
{{- $volumes := trim (default "" .volumes) -}}
{{- $mounts := trim (default "" .mounts) -}}
{{- $lowPort := false -}}
{{- range .ports -}}
{{- if lt (int .port) 1024 -}}{{- $lowPort = true -}}{{- end -}}
{{- end -}}
metadata:
  labels:
    {{- include "portico.labels" $ctx | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ .config | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "portico.serviceAccountName" $ctx }}
  # No component talks to the Kubernetes API.
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- include "portico.podSecurityContext" $ctx | nindent 4 }}
    {{- if $lowPort }}
    sysctls:
      # A non-root process binds a port under 1024 only with this sysctl (or file
      # capabilities, which the image does not carry); see docs/helm.md.
      - name: net.ipv4.ip_unprivileged_port_start
        value: "0"
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $spread := and $v.spreadAcrossNodes (ne (default "Deployment" $v.kind) "DaemonSet") }}
  {{- if or $spread $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- if $spread }}
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "portico.selectorLabels" $ctx | nindent 10 }}
    {{- end }}
    {{- with $v.topologySpreadConstraints }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "portico.image" $ctx | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args: ["-config", {{ $paths.config | quote }}]
      ports:
        {{- range .ports }}
        - name: {{ .name }}
          containerPort: {{ .port }}
          protocol: {{ default "TCP" .protocol }}
          {{- if .hostPort }}
          hostPort: {{ .hostPort }}
          {{- end }}
        {{- end }}
      env:
        # The Go runtime keeps its heap under the container's memory limit.
        - name: GOMEMLIMIT
          valueFrom:
            resourceFieldRef:
              resource: limits.memory
        {{- with $env }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- with trim (default "" .envFrom) }}
      envFrom:
        {{- . | nindent 8 }}
      {{- end }}
      # Readiness follows the component's dependencies (Redis, certstore); liveness asks
      # for the "liveness" health service, which is SERVING while the process runs, so
      # an outage elsewhere takes pods out of rotation without restarting them.
      readinessProbe:
        grpc:
          port: {{ $v.ports.health }}
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 2
      livenessProbe:
        grpc:
          port: {{ $v.ports.health }}
          service: liveness
        initialDelaySeconds: 5
        periodSeconds: 10
        timeoutSeconds: 2
        failureThreshold: 6
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- include "portico.containerSecurityContext" (dict "lowPort" $lowPort) | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/portico/config
          readOnly: true
        - name: tls
          mountPath: /etc/portico/tls
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- with $mounts }}
        {{- . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "portico.componentName" $ctx }}
    - name: tls
      secret:
        secretName: {{ include "portico.tlsSecretName" $ctx }}
        defaultMode: 0440
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- with $volumes }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The EnvVar of the Redis password, when one is configured. */}}
{{- define "portico.redisPasswordEnv" -}}
{{- with .root.Values.redis.password.existingSecret -}}
- name: PORTICO_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.root.Values.redis.password.key }}
{{- end -}}
{{- end -}}
