{{- define "kubecast.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "kubecast.labels" -}}
app.kubernetes.io/name: kubecast
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: kubecast
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "kubecast.selector" -}}
app.kubernetes.io/name: kubecast
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "kubecast.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "kubecast.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}
