output "load_balancer_dns_name" {
  description = "Point the service's DNS name (CNAME or alias) here."
  value       = aws_lb.this.dns_name
}

output "load_balancer_zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias."
  value       = aws_lb.this.zone_id
}

output "cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "ECS service."
  value       = aws_ecs_service.this.name
}

output "log_group" {
  description = "Server logs."
  value       = aws_cloudwatch_log_group.service.name
}

output "firehose_access_key_secret_arn" {
  description = "Secrets Manager secret ({\"api_key\": ...}) to configure as the Firehose stream's access key; null without Amazon Connect ingest."
  value       = one(aws_secretsmanager_secret.firehose_access_key[*].arn)
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms publish to: subscribe a pager or chat here."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the service."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
