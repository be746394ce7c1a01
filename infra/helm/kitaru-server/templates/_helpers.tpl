{{- define "kitaru-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kitaru-server.fullname" -}}
{{- printf "%s-%s" .Release.Name (include "kitaru-server.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kitaru-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kitaru-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kitaru-server.labels" -}}
{{ include "kitaru-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
