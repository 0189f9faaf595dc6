variable "ingress_nginx_chart_version" {
  description = "Version of the ingress-nginx chart (https://kubernetes.github.io/ingress-nginx)."
  type        = string
  default     = "4.14.1"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.ingress_nginx_chart_version))
    error_message = "ingress_nginx_chart_version must be an exact chart version such as 4.14.1."
  }
}

variable "cert_manager_chart_version" {
  description = "Version of the cert-manager chart (https://charts.jetstack.io)."
  type        = string
  default     = "v1.19.0"

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+$", var.cert_manager_chart_version))
    error_message = "cert_manager_chart_version must be an exact chart version such as v1.19.0."
  }
}

variable "kube_prometheus_stack_chart_version" {
  description = "Version of the kube-prometheus-stack chart (https://prometheus-community.github.io/helm-charts)."
  type        = string
  default     = "81.6.2"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.kube_prometheus_stack_chart_version))
    error_message = "kube_prometheus_stack_chart_version must be an exact chart version such as 81.6.2."
  }
}

variable "ingress_replicas" {
  description = "Replicas of the ingress controller, spread over the nodes."
  type        = number

  validation {
    condition     = var.ingress_replicas >= 1
    error_message = "ingress_replicas must be at least 1."
  }
}

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples, as a Prometheus duration such as 15d."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+(h|d|w|y)$", var.prometheus_retention))
    error_message = "prometheus_retention must be a duration such as 36h, 15d or 4w."
  }
}

variable "prometheus_storage_size" {
  description = "Size of Prometheus' persistent volume, as a Kubernetes quantity such as 50Gi."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+Gi$", var.prometheus_storage_size))
    error_message = "prometheus_storage_size must be a whole number of Gi, such as 50Gi."
  }
}
