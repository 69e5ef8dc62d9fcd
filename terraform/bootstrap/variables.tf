variable "region" {
  description = "AWS region for the state bucket and lock table."
  type        = string
  default     = "eu-central-1"
}

variable "state_bucket_name" {
  description = "Globally unique name of the S3 bucket that holds all MONTI Terraform state."
  type        = string
}

variable "lock_table_name" {
  description = "Name of the DynamoDB table for state locks."
  type        = string
  default     = "monti-terraform-locks"
}
