{{/*
A Deployment of one component. dict: root, component, ports, config, and optionally env,
volumes, mounts (see portico.podTemplate).
*/}}
{{- define "portico.deployment" -}}
{{- $ctx := dict "root" .root "component" .component -}}
{{- $v := index .root.Values .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "portico.componentName" $ctx }}
  labels:
    {{- include "portico.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ $v.replicas }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      {{- include "portico.selectorLabels" $ctx | nindent 6 }}
  template:
    {{- include "portico.podTemplate" . | nindent 4 }}
{{- end -}}

{{/* A component's ConfigMap holding config.yaml. dict: root, component, config. */}}
{{- define "portico.configMap" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "portico.componentName" $ctx }}
  labels:
    {{- include "portico.labels" $ctx | nindent 4 }}
data:
  config.yaml: |
    {{- .config | nindent 4 }}
{{- end -}}
