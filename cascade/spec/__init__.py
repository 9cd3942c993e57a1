"""What users declare: tasks, lazy results, policies, params and resources. Nothing here runs."""
