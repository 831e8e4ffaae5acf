"""Video in and out: decode a file into one preallocated IMAGE tensor, encode frames (+ audio) back."""
