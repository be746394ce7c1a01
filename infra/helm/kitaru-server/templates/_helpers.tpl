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

{{- /*
A worker's pods carry none of the server's selector labels as a set (their name is
<chart>-worker), so neither the server's Service nor its Deployment selects them.
Called with (dict "root" $ "worker" .).
*/ -}}
{{- define "kitaru-server.workerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kitaru-server.name" .root }}-worker
app.kubernetes.io/instance: {{ .root.Release.Name }}
kitaru.dev/worker: {{ .worker.name }}
{{- end -}}

{{- define "kitaru-server.workerGrace" -}}
{{- if hasKey . "grace" }}{{ .grace }}{{ else }}30{{ end -}}
{{- end -}}
