# What the Kubernetes manifests need (kubernetes/overlays/prod), and how to reach what was made.
# `terraform output -raw NAME` prints one value, sensitive ones included.

output "kubeconfig_command" {
  description = "Adds the cluster to ~/.kube/config."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.kubernetes.cluster_name}"
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.kubernetes.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = module.kubernetes.cluster_endpoint
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = module.network.vpc_cidr_block
}

output "private_subnet_cidrs" {
  description = "Ranges PostgreSQL has its addresses in (for the overlay's NetworkPolicy egress rule of history)."
  value       = module.network.private_subnet_cidrs
}

# PostgreSQL

output "postgresql_host" {
  description = "DB_HOST of history."
  value       = module.postgresql.host
}

output "postgresql_port" {
  description = "DB_PORT of history."
  value       = module.postgresql.port
}

output "postgresql_database" {
  description = "DB_NAME of history."
  value       = module.postgresql.database_name
}

output "postgresql_username" {
  description = "DB_LOGIN of history."
  value       = module.postgresql.username
}

output "postgresql_password" {
  description = "DB_PASS of history (Secret figachechnaya-db)."
  value       = module.postgresql.password
  sensitive   = true
}

output "database_url" {
  description = "DATABASE_URL of history, an alternative to the DB_* variables (Secret figachechnaya-db)."
  value       = module.postgresql.database_url
  sensitive   = true
}

# Kafka

output "kafka_bootstrap_servers" {
  description = "KAFKA_BOOTSTRAP of figalize and imagizer: the bootstrap Service of the Kafka cluster Strimzi runs (the base's kafka.env has the same)."
  value       = module.kafka.bootstrap_servers
}

output "kafka_namespace" {
  description = "Namespace of Strimzi, the Kafka cluster and the KafkaTopics."
  value       = module.kafka.namespace
}

output "kafka_cluster_name" {
  description = "Name of the Kafka cluster, the KafkaTopics' strimzi.io/cluster label."
  value       = module.kafka.cluster_name
}

# Images

output "images_bucket" {
  description = "S3_BUCKET of imagizer."
  value       = module.bucket.bucket_name
}

output "images_public_url" {
  description = "S3_PUBLIC_URL of imagizer: the images are readable by anyone under it."
  value       = module.bucket.public_base_url
}

output "imagizer_access_key_id" {
  description = "S3_ACCESS_KEY of imagizer (Secret figachechnaya-s3)."
  value       = module.bucket.imagizer_access_key_id
  sensitive   = true
}

output "imagizer_secret_access_key" {
  description = "S3_SECRET_KEY of imagizer (Secret figachechnaya-s3)."
  value       = module.bucket.imagizer_secret_access_key
  sensitive   = true
}

# Site

output "site_url" {
  description = "Address of the site."
  value       = "https://${module.dns.site_domain}/"
}

output "dns_name_servers" {
  description = "Name servers of the Route 53 zone: set them as the domain's NS records at its registrar."
  value       = module.dns.name_servers
}

output "ingress_load_balancer_hostname" {
  description = "DNS name of the load balancer in front of ingress-nginx."
  value       = module.platform.ingress_load_balancer_hostname
}

output "grafana_admin_password" {
  description = "Password of Grafana's admin user (namespace monitoring)."
  value       = module.platform.grafana_admin_password
  sensitive   = true
}

# Everything the services read from the environment, in two groups.

output "service_config" {
  description = "Non-secret variables of the services for the overlay's ConfigMaps, by variable name."
  value = {
    DB_HOST             = module.postgresql.host
    DB_PORT             = tostring(module.postgresql.port)
    DB_NAME             = module.postgresql.database_name
    DB_LOGIN            = module.postgresql.username
    KAFKA_BOOTSTRAP     = module.kafka.bootstrap_servers
    KAFKA_CREATE_TOPICS = "false"
    S3_BUCKET           = module.bucket.bucket_name
    S3_REGION           = var.region
    S3_PATH             = var.images_prefix
    S3_URL_MODE         = "public"
    S3_PUBLIC_URL       = module.bucket.public_base_url
    # ACLs are disabled on the bucket (its policy makes the images public), and S3 refuses an
    # upload that carries one.
    S3_OBJECT_ACL = "none"
  }
}

output "service_secrets" {
  description = "Secret variables of the services, by Secret: figachechnaya-db for history, figachechnaya-s3 for imagizer."
  value = {
    figachechnaya-db = {
      DB_PASS      = module.postgresql.password
      DATABASE_URL = module.postgresql.database_url
    }
    figachechnaya-s3 = {
      S3_ACCESS_KEY = module.bucket.imagizer_access_key_id
      S3_SECRET_KEY = module.bucket.imagizer_secret_access_key
    }
  }
  sensitive = true
}
