output "bootstrap_servers" {
  description = "Bootstrap address of the plaintext listener, KAFKA_BOOTSTRAP of figalize and imagizer: <cluster>-kafka-bootstrap.<namespace>.svc:9092."
  value       = "${var.cluster_name}-kafka-bootstrap.${helm_release.cluster.namespace}.svc:${local.port}"
}

output "namespace" {
  description = "Namespace of the Strimzi Cluster Operator, the Kafka cluster and the KafkaTopics."
  value       = helm_release.cluster.namespace
}

output "cluster_name" {
  description = "Name of the Kafka cluster (the KafkaTopics' strimzi.io/cluster label)."
  value       = var.cluster_name
}

output "strimzi_version" {
  description = "Version of the Strimzi Cluster Operator (its chart's version)."
  value       = helm_release.strimzi.version
}
