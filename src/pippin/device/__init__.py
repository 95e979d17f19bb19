"""What iPhones and iPads reach: enrollment, SCEP, check-in and commands, under Apple's rules, not the API's."""
