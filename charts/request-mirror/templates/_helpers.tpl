{{/* Names and labels only (app.kubernetes.io/* recommended labels). */}}
{{- define "request-mirror.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "request-mirror.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "request-mirror.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "request-mirror.tlsSecret" -}}
{{- .Values.tap.tls.secretName | default (printf "%s-tap-tls" (include "request-mirror.fullname" .)) -}}
{{- end -}}

{{- define "request-mirror.watchedNamespaces" -}}
{{- if .Values.watch.namespaces -}}{{ toJson .Values.watch.namespaces }}{{- else -}}{{ toJson (list .Release.Namespace) }}{{- end -}}
{{- end -}}
