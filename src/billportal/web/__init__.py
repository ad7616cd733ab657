"""HTTP plumbing shared by the portal, the dashboard and the API."""
