output "load_balancer_dns_name" {
  description = "Point MONTI's DNS name here."
  value       = module.monti.load_balancer_dns_name
}

output "cluster_name" {
  description = "ECS cluster, for deployments and logs."
  value       = module.monti.cluster_name
}

output "service_name" {
  description = "ECS service."
  value       = module.monti.service_name
}

output "firehose_access_key_secret_arn" {
  description = "The secret to give the Firehose stream as its access key."
  value       = module.monti.firehose_access_key_secret_arn
}
