output "load_balancer_dns_name" {
  description = "Point MONTI's DNS name here."
  value       = module.service.load_balancer_dns_name
}

output "cluster_name" {
  description = "ECS cluster."
  value       = module.service.cluster_name
}

output "service_name" {
  description = "ECS service."
  value       = module.service.service_name
}

output "database_endpoint" {
  description = "PostgreSQL endpoint."
  value       = module.database.endpoint
}

output "firehose_access_key_secret_arn" {
  description = "The secret to give the Firehose stream as its access key (Amazon Connect ingest only)."
  value       = module.service.firehose_access_key_secret_arn
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms publish to."
  value       = module.service.alarm_topic_arn
}
