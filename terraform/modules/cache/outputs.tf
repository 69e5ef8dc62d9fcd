output "url_secret_arn" {
  description = "Secrets Manager secret holding MONTI_REDIS_URL."
  value       = aws_secretsmanager_secret.url.arn
}

output "primary_endpoint" {
  description = "Primary endpoint host."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}
