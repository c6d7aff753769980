"""The customer domain of the API: the 360 view, finding customers, writing them."""
