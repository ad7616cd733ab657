"""The billing portal a signed-in customer uses."""
