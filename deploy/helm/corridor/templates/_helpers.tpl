{{/* Whether a cluster's namespace is rendered: all of them, or only the one given with --set only=<cluster>. */}}
{{- define "corridor.rendered" -}}
{{- if or (not .root.Values.only) (eq .root.Values.only .cluster.name) -}}yes{{- end -}}
{{- end -}}

{{- define "corridor.labels" -}}
app.kubernetes.io/name: corridor
app.kubernetes.io/part-of: {{ .root.Values.deployment }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* The Kafka bootstrap address of a cluster as a client elsewhere reaches it. */}}
{{- define "corridor.bootstrap" -}}
{{- $override := get .root.Values.kafka.bootstrap .cluster -}}
{{- if $override -}}{{ $override }}{{- else -}}{{ printf "%s-kafka-bootstrap.%s.svc:9093" .cluster .namespace }}{{- end -}}
{{- end -}}

{{/* Trust a cluster's CA (the Secret Strimzi's cluster operator writes beside it). */}}
{{- define "corridor.clusterTls" -}}
trustedCertificates:
  - secretName: {{ printf "%s-cluster-ca-cert" . }}
    certificate: ca.crt
{{- end -}}
