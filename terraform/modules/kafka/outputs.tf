output "bootstrap_brokers" {
  description = "Plaintext bootstrap brokers, host:port separated by commas (KAFKA_BOOTSTRAP)."
  value       = aws_msk_cluster.this.bootstrap_brokers
}

output "cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = aws_msk_cluster.this.arn
}

output "topic_name" {
  description = "Topic of the image jobs (KAFKA_TOPIC_NAME)."
  value       = aws_msk_topic.jobs.name
}

output "dead_letter_topic_name" {
  description = "Topic of the poison messages (KAFKA_DEAD_LETTER_TOPIC)."
  value       = aws_msk_topic.dead_letter.name
}

output "topic_partitions" {
  description = "Partitions of the job topic (KAFKA_TOPIC_PARTITIONS)."
  value       = aws_msk_topic.jobs.partition_count
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.this.id
}
