variable "zone_name" {
  description = "DNS zone hosted in Route 53, e.g. figachechnaya.ru; its name servers are then set at the domain's registrar."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.zone_name))
    error_message = "zone_name must be a lowercase domain name without a trailing dot, such as figachechnaya.ru."
  }
}

variable "site_domain" {
  description = "Host name of the site: the zone itself or a name inside it, e.g. figachechnaya.ru or www.figachechnaya.ru."
  type        = string

  validation {
    condition     = var.site_domain == var.zone_name || endswith(var.site_domain, ".${var.zone_name}")
    error_message = "site_domain must be zone_name or a name inside it."
  }
}

variable "load_balancer_hostname" {
  description = "DNS name of the network load balancer in front of the ingress controller."
  type        = string
}
