output "host" {
  description = "Host name of the instance (DB_HOST); it follows a Multi-AZ failover."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the instance (DB_PORT)."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Name of history's database (DB_NAME)."
  value       = aws_db_instance.this.db_name
}

output "username" {
  description = "User history connects as (DB_LOGIN)."
  value       = aws_db_instance.this.username
}

output "password" {
  description = "Password of that user (DB_PASS)."
  value       = local.password
  sensitive   = true
}

output "database_url" {
  description = "DATABASE_URL for history: postgres://user:password@host:port/database."
  value       = "postgres://${aws_db_instance.this.username}:${local.password}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${aws_db_instance.this.db_name}"
  sensitive   = true
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.this.id
}
