# General

variable "region" {
  description = "AWS region of every resource, e.g. eu-central-1."
  type        = string
  default     = "eu-central-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-central-1."
  }
}

variable "project" {
  description = "Name of the product, the first part of every resource name."
  type        = string
  default     = "figachechnaya"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.project))
    error_message = "project must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Name of the environment, the second part of every resource name."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lowercase letters and digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags on every resource (Project, Environment and ManagedBy are always set)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the EKS control plane's logs, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the retention periods CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "deletion_protection" {
  description = "Protect the PostgreSQL instance against deletion; set to false deliberately before destroying the environment."
  type        = bool
  default     = true
}

# Network

variable "vpc_cidr" {
  description = "IPv4 range of the VPC, /16 to /20."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && can(regex("/(1[6-9]|20)$", var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block from /16 to /20, such as 10.20.0.0/16."
  }
}

variable "availability_zone_count" {
  description = "Availability zones used by the subnets, the nodes (and so the Kafka brokers) and PostgreSQL's standby (2 or 3)."
  type        = number
  default     = 3

  validation {
    condition     = contains([2, 3], var.availability_zone_count)
    error_message = "availability_zone_count must be 2 or 3."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC instead of one per availability zone: cheaper, but outbound traffic from the private subnets stops if its zone fails."
  type        = bool
  default     = false
}

# Kubernetes

variable "kubernetes_version" {
  description = "Kubernetes minor version of EKS, e.g. 1.34; raise one minor version at a time."
  type        = string
  default     = "1.34"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a Kubernetes minor version such as 1.34."
  }
}

variable "kubernetes_api_allowed_cidrs" {
  description = "Networks allowed to reach the public Kubernetes API endpoint: the operators' and CI's addresses. There is no default: an open API endpoint has to be asked for."
  type        = list(string)

  validation {
    condition     = length(var.kubernetes_api_allowed_cidrs) > 0 && alltrue([for cidr in var.kubernetes_api_allowed_cidrs : can(cidrhost(cidr, 0))])
    error_message = "kubernetes_api_allowed_cidrs must be a non-empty list of IPv4 CIDR blocks such as 203.0.113.0/24."
  }
}

variable "node_instance_types" {
  description = "EC2 instance types of the nodes."
  type        = list(string)
  default     = ["t3.large"]

  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "node_instance_types must name at least one instance type."
  }
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT capacity for the nodes."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_disk_size" {
  description = "Root volume of each node in GiB."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_size >= 20
    error_message = "node_disk_size must be at least 20 GiB."
  }
}

variable "node_min_size" {
  description = "Fewest nodes."
  type        = number
  default     = 3

  validation {
    condition     = var.node_min_size >= 1
    error_message = "node_min_size must be at least 1."
  }
}

variable "node_desired_size" {
  description = "Nodes at creation."
  type        = number
  default     = 3

  validation {
    condition     = var.node_desired_size >= var.node_min_size && var.node_desired_size <= var.node_max_size
    error_message = "node_desired_size must lie between node_min_size and node_max_size."
  }
}

variable "node_max_size" {
  description = "Most nodes."
  type        = number
  default     = 6

  validation {
    condition     = var.node_max_size >= var.node_min_size
    error_message = "node_max_size must be at least node_min_size."
  }
}

variable "ingress_replicas" {
  description = "Replicas of the ingress-nginx controller."
  type        = number
  default     = 3

  validation {
    condition     = var.ingress_replicas >= 1
    error_message = "ingress_replicas must be at least 1."
  }
}

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples, e.g. 15d."
  type        = string
  default     = "15d"

  validation {
    condition     = can(regex("^[0-9]+(h|d|w|y)$", var.prometheus_retention))
    error_message = "prometheus_retention must be a duration such as 36h, 15d or 4w."
  }
}

variable "prometheus_storage_size" {
  description = "Size of Prometheus' volume, e.g. 50Gi."
  type        = string
  default     = "50Gi"

  validation {
    condition     = can(regex("^[0-9]+Gi$", var.prometheus_storage_size))
    error_message = "prometheus_storage_size must be a whole number of Gi, such as 50Gi."
  }
}

# PostgreSQL

variable "postgresql_version" {
  description = "PostgreSQL major version of RDS."
  type        = string
  default     = "17"

  validation {
    condition     = can(regex("^1[4-9]$", var.postgresql_version))
    error_message = "postgresql_version must be a PostgreSQL major version from 14 to 19."
  }
}

variable "postgresql_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.postgresql_instance_class, "db.")
    error_message = "postgresql_instance_class must be an RDS instance class such as db.t4g.medium."
  }
}

variable "postgresql_allocated_storage" {
  description = "Initial storage of PostgreSQL in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.postgresql_allocated_storage >= 20
    error_message = "postgresql_allocated_storage must be at least 20 GiB."
  }
}

variable "postgresql_max_allocated_storage" {
  description = "Ceiling in GiB for RDS storage autoscaling."
  type        = number
  default     = 200

  validation {
    condition     = var.postgresql_max_allocated_storage >= var.postgresql_allocated_storage
    error_message = "postgresql_max_allocated_storage must be at least postgresql_allocated_storage."
  }
}

variable "postgresql_multi_az" {
  description = "Keep a standby of PostgreSQL in another availability zone."
  type        = bool
  default     = true
}

variable "postgresql_backup_retention_days" {
  description = "Days of automated PostgreSQL backups."
  type        = number
  default     = 14

  validation {
    condition     = var.postgresql_backup_retention_days >= 1 && var.postgresql_backup_retention_days <= 35
    error_message = "postgresql_backup_retention_days must be between 1 and 35."
  }
}

variable "postgresql_database_name" {
  description = "History's database (DB_NAME)."
  type        = string
  default     = "figachechnaya"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.postgresql_database_name))
    error_message = "postgresql_database_name must start with a letter and hold only lowercase letters, digits and underscores."
  }
}

variable "postgresql_username" {
  description = "The user history connects as (DB_LOGIN)."
  type        = string
  default     = "figachechnaya"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.postgresql_username))
    error_message = "postgresql_username must start with a letter and hold only lowercase letters, digits and underscores."
  }
}

variable "postgresql_password" {
  description = "Password of that user (DB_PASS). Leave unset to have one generated; to set it, use TF_VAR_postgresql_password from a secret store, never a file in the repository."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.postgresql_password == null || can(regex("^[A-Za-z0-9_~.-]{16,128}$", var.postgresql_password))
    error_message = "postgresql_password must be 16-128 characters of letters, digits and _ ~ . -."
  }
}

# Kafka (in the cluster, run by Strimzi)

variable "kafka_version" {
  description = "Apache Kafka version of the brokers; one the Strimzi release of modules/kafka supports (Strimzi 0.49: 4.0.0 to 4.1.1)."
  type        = string
  default     = "4.1.1"

  validation {
    condition     = can(regex("^[4-9]\\.[0-9]+\\.[0-9]+$", var.kafka_version))
    error_message = "kafka_version must be an exact Kafka version of 4.0.0 or later, such as 4.1.1."
  }
}

variable "kafka_replicas" {
  description = "Kafka nodes, each a KRaft controller and a broker, spread over the availability zones. The topics of kubernetes/base have 3 replicas with 2 in sync, so at least 3."
  type        = number
  default     = 3

  validation {
    condition     = var.kafka_replicas >= 3 && floor(var.kafka_replicas) == var.kafka_replicas
    error_message = "kafka_replicas must be a whole number of at least 3: the topics of kubernetes/base have 3 replicas."
  }
}

variable "kafka_storage_size" {
  description = "Persistent volume (gp3) of each Kafka node, such as 50Gi; it can grow later, not shrink."
  type        = string
  default     = "50Gi"

  validation {
    condition     = can(regex("^[1-9][0-9]*Gi$", var.kafka_storage_size))
    error_message = "kafka_storage_size must be a whole number of Gi, such as 50Gi."
  }
}

variable "kafka_resources" {
  description = "CPU and memory requests and limits of each Kafka node, as Kubernetes quantities."
  type = object({
    requests = object({ cpu = string, memory = string })
    limits   = object({ cpu = string, memory = string })
  })
  default = {
    requests = { cpu = "250m", memory = "2Gi" }
    limits   = { cpu = "1", memory = "2Gi" }
  }
}

variable "kafka_client_namespaces" {
  description = "Namespaces whose pods may connect to Kafka's plaintext listener: the product's (kubernetes/overlays/prod); an empty list admits every namespace."
  type        = list(string)
  default     = ["figachechnaya"]
}

# Images

variable "images_bucket_name" {
  description = "Name of the S3 bucket of the images (S3_BUCKET); globally unique, without dots."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.images_bucket_name))
    error_message = "images_bucket_name must be 3-63 characters of lowercase letters, digits and hyphens."
  }
}

variable "images_prefix" {
  description = "Prefix of the images' object names (S3_PATH): empty, or a path ending with a slash such as images/."
  type        = string
  default     = ""

  validation {
    condition     = var.images_prefix == "" || can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/$", var.images_prefix))
    error_message = "images_prefix must be empty or a path ending with a slash, such as images/."
  }
}

variable "images_force_destroy" {
  description = "Let terraform destroy delete the bucket with the images still in it."
  type        = bool
  default     = false
}

# DNS

variable "dns_zone_name" {
  description = "The domain whose DNS zone Route 53 hosts, e.g. figachechnaya.ru."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.dns_zone_name))
    error_message = "dns_zone_name must be a lowercase domain name without a trailing dot."
  }
}

variable "site_domain" {
  description = "Host name of the site, the zone itself or a name in it; the Ingress and its certificate use the same name."
  type        = string

  validation {
    condition     = var.site_domain == var.dns_zone_name || endswith(var.site_domain, ".${var.dns_zone_name}")
    error_message = "site_domain must be dns_zone_name or a name inside it."
  }
}
