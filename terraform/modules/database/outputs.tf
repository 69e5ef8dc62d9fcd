output "url_secret_arn" {
  description = "Secrets Manager secret holding MONTI_DATABASE_URL."
  value       = aws_secretsmanager_secret.url.arn
}

output "endpoint" {
  description = "Database host and port."
  value       = aws_db_instance.this.endpoint
}
