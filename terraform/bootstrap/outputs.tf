output "state_bucket" {
  description = "Bucket to name in every stack's backend configuration."
  value       = aws_s3_bucket.state.id
}

output "lock_table" {
  description = "Lock table to name in every stack's backend configuration."
  value       = aws_dynamodb_table.locks.name
}

output "state_kms_key_arn" {
  description = "KMS key that encrypts state; backends name it as kms_key_id."
  value       = aws_kms_key.state.arn
}
