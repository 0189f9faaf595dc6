# The site's DNS: a Route 53 zone and an alias record for the site pointing at the ingress
# controller's network load balancer. An alias works at the zone apex, where a CNAME cannot.

resource "aws_route53_zone" "this" {
  name    = var.zone_name
  comment = "Figachechnaya"
}

# The hosted zone of network load balancers in the provider's region, which an alias names.
data "aws_lb_hosted_zone_id" "network" {
  load_balancer_type = "network"
}

resource "aws_route53_record" "site" {
  zone_id = aws_route53_zone.this.zone_id
  name    = var.site_domain
  type    = "A"

  alias {
    name                   = var.load_balancer_hostname
    zone_id                = data.aws_lb_hosted_zone_id.network.id
    evaluate_target_health = true
  }
}
