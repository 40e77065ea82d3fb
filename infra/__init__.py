"""CDK app, Lambda asset build and the local runtime of the finance integration gateway."""
