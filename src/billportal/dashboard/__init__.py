"""The company admins' dashboard on ``dashboard.{base domain}``: Settings > Developers > Single Sign-On."""
