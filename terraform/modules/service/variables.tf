variable "name" {
  description = "Name prefix, for example monti-staging."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the service."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "service_security_group_id" {
  description = "Security group of the tasks (created by the environment so the database and cache can admit it)."
  type        = string
}

variable "trusted_proxy_cidrs" {
  description = "Where the load balancer's requests come from (the VPC): only their X-Forwarded-For and X-Forwarded-Proto are believed."
  type        = list(string)
}

variable "allowed_ingress_cidrs" {
  description = "Networks allowed to reach the load balancer, for example the company's egress ranges."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener."
  type        = string
}

variable "ecr_repository_url" {
  description = "Repository of the server image."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of that repository, for the pull permission."
  type        = string
}

variable "image_tag" {
  description = "Image tag to run (the release version)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the log groups and the secrets."
  type        = string
}

variable "secret_arns" {
  description = "Secrets the execution role may read."
  type        = list(string)
}

variable "secret_environment" {
  description = "Environment variables filled from Secrets Manager: name to secret ARN."
  type        = map(string)
}

variable "extra_environment" {
  description = "Further MONTI_* settings for the server."
  type        = map(string)
  default     = {}
}

variable "simulator_enabled" {
  description = "Run the simulated floor (staging demos); off where real events arrive."
  type        = bool
  default     = false
}

variable "cpu" {
  description = "Task CPU units (1024 = one vCPU)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Task memory in MiB."
  type        = number
  default     = 2048
}

variable "min_tasks" {
  description = "Fewest tasks. Keep min and max at 1 until the server shares its floor through Redis: separate instances would show separate floors."
  type        = number
  default     = 1
}

variable "max_tasks" {
  description = "Most tasks autoscaling may run."
  type        = number
  default     = 1
}

variable "cpu_target_percent" {
  description = "Average CPU autoscaling aims for."
  type        = number
  default     = 60
}

variable "log_retention_days" {
  description = "Days to keep server, WAF and load balancer logs."
  type        = number
  default     = 365
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "amazon_connect_ingest" {
  description = "Take Amazon Connect agent events from Amazon Data Firehose: its addresses may reach /api/v1/ingest/amazon-connect (and nothing else), and an access key is made in Secrets Manager."
  type        = bool
  default     = false
}

variable "firehose_cidrs" {
  description = "Firehose's delivery addresses; null for the blocks AWS documents for the region."
  type        = list(string)
  default     = null
}

variable "amazon_connect_contact_events" {
  description = "Also take Amazon Connect contact events (queues): an EventBridge rule sends them to a Firehose stream that delivers to MONTI with the same access key (needs amazon_connect_ingest and public_url)."
  type        = bool
  default     = false
}

variable "connect_instance_arn" {
  description = "Only this Amazon Connect instance's contact events; null for every instance in the account and region."
  type        = string
  default     = null
}

variable "public_url" {
  description = "MONTI's public https URL (the certificate's name, no trailing slash), where Firehose delivers contact events."
  type        = string
  default     = ""
  validation {
    condition     = var.public_url == "" || can(regex("^https://[^/]+$", var.public_url))
    error_message = "public_url is https://host, with no path or trailing slash."
  }
}

variable "alarm_emails" {
  description = "Addresses the alarms are mailed to (each confirms its SNS subscription once); other subscribers can be added to the alarm topic (output alarm_topic_arn)."
  type        = list(string)
  default     = []
}

variable "collector_image" {
  description = "The AWS Distro for OpenTelemetry collector image that sends the server's metrics to CloudWatch."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0"
}

variable "alarm_slow_viewers_per_5_minutes" {
  description = "Viewers dropped for not keeping up, in 5 minutes, above which the alarm goes off."
  type        = number
  default     = 5
}

variable "alarm_sign_in_refusals_per_5_minutes" {
  description = "Requests refused for one reason of their token, in 5 minutes, above which that reason's alarm goes off."
  type        = number
  default     = 50
}
