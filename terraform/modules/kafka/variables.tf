variable "namespace" {
  description = "Namespace of the Strimzi Cluster Operator, the Kafka cluster and the KafkaTopics; kubernetes/ expects kafka (KAFKA_BOOTSTRAP, kafkatopics.yaml, the network policies)."
  type        = string
  default     = "kafka"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a Kubernetes namespace name: lowercase letters, digits and hyphens."
  }
}

variable "cluster_name" {
  description = "Name of the Kafka cluster: the KafkaTopics' strimzi.io/cluster label and the first part of the bootstrap Service's name, <cluster_name>-kafka-bootstrap."
  type        = string
  default     = "figachechnaya"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be 1-32 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "strimzi_chart_version" {
  description = "Version of the strimzi-kafka-operator chart (https://strimzi.io/charts/), which is the Strimzi version; 0.49.0 or later, the first with the kafka.strimzi.io/v1 API the manifests use."
  type        = string
  default     = "0.49.1"

  validation {
    condition     = can(regex("^(0\\.(49|[5-9][0-9])|[1-9][0-9]*\\.[0-9]+)\\.[0-9]+$", var.strimzi_chart_version))
    error_message = "strimzi_chart_version must be an exact Strimzi version of 0.49.0 or later, such as 0.49.1."
  }
}

variable "kafka_version" {
  description = "Apache Kafka version of the brokers; one the Strimzi release supports (Strimzi 0.49: 4.0.0 to 4.1.1). Raise it one minor version at a time."
  type        = string
  default     = "4.1.1"

  validation {
    condition     = can(regex("^[4-9]\\.[0-9]+\\.[0-9]+$", var.kafka_version))
    error_message = "kafka_version must be an exact Kafka version of 4.0.0 or later, such as 4.1.1."
  }
}

variable "replicas" {
  description = "Kafka nodes, each a KRaft controller and a broker. The KafkaTopics of kubernetes/base have 3 replicas and need 2 in sync, so 3 or more in production; 1 or 2 only with topics of as many replicas."
  type        = number
  default     = 3

  validation {
    condition     = var.replicas >= 1 && floor(var.replicas) == var.replicas
    error_message = "replicas must be a whole number of at least 1."
  }
}

variable "storage_size" {
  description = "Persistent volume of each Kafka node, for its logs and the KRaft metadata, such as 50Gi. It can grow later (the StorageClass allows expansion), not shrink."
  type        = string
  default     = "50Gi"

  validation {
    condition     = can(regex("^[1-9][0-9]*Gi$", var.storage_size))
    error_message = "storage_size must be a whole number of Gi, such as 50Gi."
  }
}

variable "storage_class" {
  description = "StorageClass of the Kafka nodes' volumes (the platform module's gp3); an empty string for the cluster's default class."
  type        = string
  default     = "gp3"
}

variable "resources" {
  description = "CPU and memory requests and limits of each Kafka node's container, as Kubernetes quantities; Strimzi sizes the JVM heap from the memory."
  type = object({
    requests = object({ cpu = string, memory = string })
    limits   = object({ cpu = string, memory = string })
  })
  default = {
    requests = { cpu = "250m", memory = "2Gi" }
    limits   = { cpu = "1", memory = "2Gi" }
  }

  validation {
    condition = alltrue([
      for quantities in [var.resources.requests, var.resources.limits] :
      can(regex("^([0-9]+m|[0-9]+(\\.[0-9]+)?)$", quantities.cpu)) && can(regex("^[0-9]+(Mi|Gi)$", quantities.memory))
    ])
    error_message = "resources must give cpu as cores or millicores (1, 0.5, 250m) and memory in Mi or Gi (2Gi)."
  }
}

variable "client_namespaces" {
  description = "Namespaces whose pods may connect to the plaintext listener (the NetworkPolicy Strimzi generates for the brokers); an empty list admits every namespace."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for namespace in var.client_namespaces : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", namespace))])
    error_message = "client_namespaces must hold Kubernetes namespace names."
  }
}

variable "pod_security_standard" {
  description = "Pod Security Standard the namespace enforces and whose security context Strimzi gives its pods: restricted, or baseline where a restricted pod cannot run (it audits and warns about restricted either way)."
  type        = string
  default     = "restricted"

  validation {
    condition     = contains(["restricted", "baseline"], var.pod_security_standard)
    error_message = "pod_security_standard must be restricted or baseline."
  }
}
