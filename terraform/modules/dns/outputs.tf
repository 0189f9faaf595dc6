output "zone_id" {
  description = "ID of the Route 53 zone."
  value       = aws_route53_zone.this.zone_id
}

output "name_servers" {
  description = "Name servers of the zone, to be set as the domain's NS records at its registrar."
  value       = aws_route53_zone.this.name_servers
}

output "site_domain" {
  description = "Host name of the site."
  value       = aws_route53_record.site.fqdn
}
