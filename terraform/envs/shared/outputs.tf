output "ecr_repository_url" {
  description = "Where release.yml pushes the server image."
  value       = aws_ecr_repository.server.repository_url
}

output "github_role_arns" {
  description = "Roles for the repository's Actions variables AWS_RELEASE_ROLE_ARN, AWS_PLAN_ROLE_ARN, AWS_STAGING_ROLE_ARN and AWS_PROD_ROLE_ARN."
  value       = { for key, role in aws_iam_role.github : key => role.arn }
}
