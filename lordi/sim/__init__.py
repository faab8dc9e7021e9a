"""Simulated laptops: hardware that wears, charges and roams, driving the real agent code."""
