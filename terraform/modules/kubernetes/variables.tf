variable "name" {
  description = "Name of the EKS cluster and prefix of its IAM roles, e.g. figachechnaya-prod."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and the nodes, e.g. 1.34. Raise it one minor version at a time to upgrade."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a Kubernetes minor version such as 1.34."
  }
}

variable "subnet_ids" {
  description = "Private subnets, in at least two availability zones, for the control plane's network interfaces and the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "public_access_cidrs" {
  description = "Networks allowed to reach the public Kubernetes API endpoint (operators, CI). The nodes use the private endpoint."
  type        = list(string)

  validation {
    condition     = length(var.public_access_cidrs) > 0 && alltrue([for cidr in var.public_access_cidrs : can(cidrhost(cidr, 0))])
    error_message = "public_access_cidrs must be a non-empty list of IPv4 CIDR blocks."
  }
}

variable "node_instance_types" {
  description = "EC2 instance types of the node group, e.g. [\"t3.large\"]; several types widen the choice for SPOT capacity."
  type        = list(string)

  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "node_instance_types must name at least one instance type."
  }
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT capacity for the nodes."
  type        = string

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_disk_size" {
  description = "Root volume of each node in GiB (container images and logs)."
  type        = number

  validation {
    condition     = var.node_disk_size >= 20 && var.node_disk_size <= 1000
    error_message = "node_disk_size must be between 20 and 1000 GiB."
  }
}

variable "node_min_size" {
  description = "Fewest nodes in the node group."
  type        = number

  validation {
    condition     = var.node_min_size >= 1
    error_message = "node_min_size must be at least 1."
  }
}

variable "node_desired_size" {
  description = "Nodes at creation; later changes by a cluster autoscaler are left alone."
  type        = number

  validation {
    condition     = var.node_desired_size >= 1
    error_message = "node_desired_size must be at least 1."
  }
}

variable "node_max_size" {
  description = "Most nodes in the node group."
  type        = number

  validation {
    condition     = var.node_max_size >= var.node_min_size && var.node_max_size >= var.node_desired_size
    error_message = "node_max_size must be at least node_min_size and node_desired_size."
  }
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the control plane's logs (api, audit, authenticator), in days."
  type        = number

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the retention periods CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}
