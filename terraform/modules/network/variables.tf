variable "name" {
  description = "Name prefix of every resource, for example monti-staging."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range; subnets are /20s carved from a /16."
  type        = string
  default     = "10.40.0.0/16"
}

variable "nat_gateways" {
  description = "NAT gateways: 1 (cheaper, staging) or 2 (one per zone, production)."
  type        = number
  default     = 2
  validation {
    condition     = contains([1, 2], var.nat_gateways)
    error_message = "nat_gateways must be 1 or 2."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the flow log group."
  type        = string
}

variable "availability_zones" {
  description = "The two availability zones to use, in the provider's region."
  type        = list(string)
  default     = ["eu-central-1a", "eu-central-1b"]
  validation {
    condition     = length(var.availability_zones) == 2
    error_message = "Name exactly two availability zones."
  }
}
