variable "name" {
  description = "Name prefix, for example monti-staging."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in two availability zones."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "Security group of the MONTI service, the only client allowed in."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the URL secret."
  type        = string
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage_gb" {
  description = "Initial storage in GiB; autoscaling may grow it to four times this."
  type        = number
  default     = 20
}

variable "multi_az" {
  description = "A standby in a second zone (production)."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Refuse to delete the database while set."
  type        = bool
  default     = true
}
