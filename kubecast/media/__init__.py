"""Shared media primitives: FLV tags, MP4/CMAF boxes, codec strings, the channel timeline."""
