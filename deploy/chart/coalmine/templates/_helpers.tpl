{{- define "coalmine.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "coalmine.labels" -}}
app.kubernetes.io/name: coalmine
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "coalmine.selector" -}}
app.kubernetes.io/name: coalmine
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "coalmine.signingSecret" -}}
{{- .Values.webhookSigning.existingSecret | default (printf "%s-webhook-signing" (include "coalmine.fullname" .)) -}}
{{- end -}}
