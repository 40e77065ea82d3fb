"""The local twin: deploy the synthesized CloudFormation template into an in-process moto server
and serve it the way AWS would (API Gateway data plane, Lambda, SQS pollers, schedules,
Step Functions). Started by `make local` (`python -m infra.local`)."""
