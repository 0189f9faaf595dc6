output "ingress_load_balancer_hostname" {
  description = "DNS name of the network load balancer in front of ingress-nginx."
  value       = data.kubernetes_service_v1.ingress.status[0].load_balancer[0].ingress[0].hostname
}

output "ingress_class_name" {
  description = "IngressClass of ingress-nginx, the cluster's default."
  value       = local.ingress_class
}

output "grafana_admin_password" {
  description = "Password of Grafana's admin user."
  value       = random_password.grafana_admin.result
  sensitive   = true
}

output "monitoring_namespace" {
  description = "Namespace of Prometheus, Alertmanager and Grafana."
  value       = helm_release.kube_prometheus_stack.namespace
}

output "storage_class_name" {
  description = "The default StorageClass (gp3 EBS volumes)."
  value       = kubernetes_storage_class_v1.gp3.metadata[0].name
}
