output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "The availability zones the subnets are in, in subnet order."
  value       = local.zones
}

output "public_subnet_ids" {
  description = "Public subnets, one per availability zone: the internet-facing load balancer and the NAT gateways."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets, one per availability zone: Kubernetes nodes, PostgreSQL and Kafka brokers."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "IPv4 ranges of the private subnets, where PostgreSQL has its addresses (for NetworkPolicy egress rules)."
  value       = aws_subnet.private[*].cidr_block
}
