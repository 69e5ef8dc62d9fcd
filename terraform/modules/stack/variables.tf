variable "name" {
  description = "Environment name and resource prefix, for example monti-staging."
  type        = string
}

variable "image_tag" {
  description = "Server image tag to run."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for the load balancer's HTTPS listener."
  type        = string
}

variable "allowed_ingress_cidrs" {
  description = "Networks allowed to reach MONTI (the company's egress ranges)."
  type        = list(string)
}

variable "vpc_cidr" {
  description = "VPC address range."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "The two availability zones, in the provider's region."
  type        = list(string)
  default     = ["eu-central-1a", "eu-central-1b"]
}

variable "nat_gateways" {
  description = "1 or 2 NAT gateways."
  type        = number
  default     = 2
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_storage_gb" {
  description = "Initial database storage, GiB."
  type        = number
  default     = 20
}

variable "db_multi_az" {
  description = "Standby database in a second zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of database backups."
  type        = number
  default     = 14
}

variable "cache_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "cache_replicas" {
  description = "Redis replicas (0 = single node)."
  type        = number
  default     = 1
}

variable "task_cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Fargate task memory, MiB."
  type        = number
  default     = 2048
}

variable "min_tasks" {
  description = "Fewest server tasks."
  type        = number
  default     = 1
}

variable "max_tasks" {
  description = "Most server tasks; keep at 1 until the server shares its floor through Redis."
  type        = number
  default     = 1
}

variable "simulator_enabled" {
  description = "Run the simulated floor."
  type        = bool
  default     = false
}

variable "server_environment" {
  description = "Further MONTI_* settings."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Days to keep logs."
  type        = number
  default     = 365
}

variable "deletion_protection" {
  description = "Protect the database and load balancer from deletion."
  type        = bool
  default     = true
}

variable "amazon_connect_ingest" {
  description = "Take Amazon Connect agent events through Amazon Data Firehose (docs/INGEST.md)."
  type        = bool
  default     = false
}

variable "firehose_cidrs" {
  description = "Firehose's delivery addresses; null for the blocks AWS documents for the region."
  type        = list(string)
  default     = null
}

variable "amazon_connect_contact_events" {
  description = "Take Amazon Connect contact events (queues) through an EventBridge rule and a Firehose stream (needs amazon_connect_ingest and public_url; docs/INGEST.md)."
  type        = bool
  default     = false
}

variable "connect_instance_arn" {
  description = "Only this Amazon Connect instance's contact events; null for every instance."
  type        = string
  default     = null
}

variable "public_url" {
  description = "MONTI's public https URL (https://host, the certificate's name), where Firehose delivers contact events."
  type        = string
  default     = ""
}

variable "alarm_emails" {
  description = "Addresses the alarms are mailed to."
  type        = list(string)
  default     = []
}
