{{/* Labels of every object of the release. */}}
{{- define "figachechnaya-kafka.labels" -}}
app.kubernetes.io/name: kafka
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: figachechnaya
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Replicas of a topic created without a replication factor (and of Kafka's own topics):
     3, or every node when there are fewer. */}}
{{- define "figachechnaya-kafka.replicationFactor" -}}
{{- min 3 (int .Values.replicas) -}}
{{- end -}}

{{/* Replicas in sync that a write needs: one fewer than the replication factor, so a node
     may be down (a rolling update, a drain), and at least 1. */}}
{{- define "figachechnaya-kafka.minInsyncReplicas" -}}
{{- max 1 (sub (int (include "figachechnaya-kafka.replicationFactor" .)) 1) -}}
{{- end -}}
