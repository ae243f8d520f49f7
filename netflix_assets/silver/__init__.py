"""Silver: the five tables cleaned, typed and deduplicated per partition; refused rows in quarantine."""
