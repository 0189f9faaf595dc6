variable "name" {
  description = "Name of the MSK cluster and prefix of its companions, e.g. figachechnaya-prod."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,50}$", var.name))
    error_message = "name must be 3-51 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the brokers' security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per availability zone, that the brokers are spread over."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2 && length(var.subnet_ids) <= 3
    error_message = "MSK spreads brokers over two or three subnets in different availability zones."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups whose members may connect to the brokers on port 9092 (the Kubernetes nodes, and so figalize's and imagizer's pods)."
  type        = list(string)
}

variable "kafka_version" {
  description = "Apache Kafka version of the brokers as MSK names it, e.g. 3.8.x; 3.6.0 or later, which the MSK topic API needs."
  type        = string

  validation {
    condition     = can(regex("^(3\\.([6-9]|[1-9][0-9])|[4-9]\\.[0-9]+)\\.(x|[0-9]+)(\\.kraft)?$", var.kafka_version))
    error_message = "kafka_version must be an MSK Kafka version of 3.6.0 or later, such as 3.8.x."
  }
}

variable "broker_instance_type" {
  description = "Instance type of each broker, e.g. kafka.t3.small or kafka.m7g.large."
  type        = string

  validation {
    condition     = startswith(var.broker_instance_type, "kafka.")
    error_message = "broker_instance_type must be an MSK broker type such as kafka.m7g.large."
  }
}

variable "brokers_per_zone" {
  description = "Brokers in each availability zone; the cluster has this many times the number of subnets."
  type        = number

  validation {
    condition     = var.brokers_per_zone >= 1 && floor(var.brokers_per_zone) == var.brokers_per_zone
    error_message = "brokers_per_zone must be a whole number of at least 1."
  }
}

variable "broker_volume_size" {
  description = "EBS storage of each broker in GiB."
  type        = number

  validation {
    condition     = var.broker_volume_size >= 1 && var.broker_volume_size <= 16384
    error_message = "broker_volume_size must be between 1 and 16384 GiB."
  }
}

variable "topic_name" {
  description = "Topic of the image jobs (KAFKA_TOPIC_NAME); its dead-letter topic is <topic_name>.dead-letter."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,200}$", var.topic_name))
    error_message = "topic_name must be 1-200 characters of letters, digits, dots, underscores and hyphens."
  }
}

variable "topic_partitions" {
  description = "Partitions of the job topic: the most imagizer consumers that share the work."
  type        = number

  validation {
    condition     = var.topic_partitions >= 1 && var.topic_partitions <= 1000
    error_message = "topic_partitions must be between 1 and 1000."
  }
}

variable "dead_letter_partitions" {
  description = "Partitions of the dead-letter topic, which only collects poison messages."
  type        = number

  validation {
    condition     = var.dead_letter_partitions >= 1 && var.dead_letter_partitions <= 100
    error_message = "dead_letter_partitions must be between 1 and 100."
  }
}

variable "topic_retention_hours" {
  description = "How long the job topic keeps messages, in hours; a job is done within seconds, so this is the window for replaying jobs."
  type        = number

  validation {
    condition     = var.topic_retention_hours >= 1
    error_message = "topic_retention_hours must be at least 1."
  }
}

variable "dead_letter_retention_hours" {
  description = "How long the dead-letter topic keeps poison messages for inspection, in hours."
  type        = number

  validation {
    condition     = var.dead_letter_retention_hours >= 1
    error_message = "dead_letter_retention_hours must be at least 1."
  }
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the brokers' logs, in days."
  type        = number

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the retention periods CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}
