# Managed Kafka for the image jobs: an MSK cluster with brokers in every private subnet, a
# configuration that creates no topic by itself, and the two topics the services use, created
# through the MSK topic API (no network path from Terraform to the brokers is needed).
#
# figalize and imagizer speak plaintext Kafka without authentication (their librdkafka is built
# without TLS and SASL), so the brokers listen on plaintext port 9092 and only the Kubernetes
# nodes' security group may reach it. Traffic between brokers is encrypted.

locals {
  broker_count       = length(var.subnet_ids) * var.brokers_per_zone
  replication_factor = min(3, local.broker_count)
  min_insync         = max(1, local.replication_factor - 1)
  dead_letter_topic  = "${var.topic_name}.dead-letter"
}

resource "aws_security_group" "this" {
  name        = "${var.name}-kafka"
  description = "Kafka brokers of ${var.name}: plaintext port 9092 from the Kubernetes nodes"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  count = length(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = var.allowed_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = 9092
  to_port                      = 9092
  description                  = "Kafka (plaintext) from the Kubernetes nodes"
}

resource "aws_msk_configuration" "this" {
  name           = var.name
  kafka_versions = [var.kafka_version]
  description    = "Broker settings of ${var.name}"

  # Topics exist only when declared here: a typo in a topic name fails instead of creating one.
  server_properties = join("\n", [
    "auto.create.topics.enable=false",
    "default.replication.factor=${local.replication_factor}",
    "min.insync.replicas=${local.min_insync}",
    "num.partitions=${var.topic_partitions}",
    "unclean.leader.election.enable=false",
    "",
  ])
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/aws/msk/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = local.broker_count

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size
      }
    }
  }

  client_authentication {
    unauthenticated = true
  }

  encryption_info {
    encryption_in_transit {
      client_broker = "PLAINTEXT"
      in_cluster    = true
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }
}

resource "aws_msk_topic" "jobs" {
  cluster_arn        = aws_msk_cluster.this.arn
  name               = var.topic_name
  partition_count    = var.topic_partitions
  replication_factor = local.replication_factor

  configs = jsonencode({
    "cleanup.policy"      = "delete"
    "retention.ms"        = tostring(var.topic_retention_hours * 3600000)
    "min.insync.replicas" = tostring(local.min_insync)
  })
}

resource "aws_msk_topic" "dead_letter" {
  cluster_arn        = aws_msk_cluster.this.arn
  name               = local.dead_letter_topic
  partition_count    = var.dead_letter_partitions
  replication_factor = local.replication_factor

  configs = jsonencode({
    "cleanup.policy"      = "delete"
    "retention.ms"        = tostring(var.dead_letter_retention_hours * 3600000)
    "min.insync.replicas" = tostring(local.min_insync)
  })
}
