variable "name" {
  description = "Name prefix, for example monti-staging."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
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
  description = "KMS key for data at rest and the URL secret."
  type        = string
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "replicas" {
  description = "Read replicas; one or more enables automatic failover across zones."
  type        = number
  default     = 1
}
