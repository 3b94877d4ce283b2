-- Argo CD health of a kubecast resource, from its kstatus conditions (the same for all three kinds).
local health = {status = "Progressing", message = "Waiting for the operator"}
if obj.status == nil or obj.status.conditions == nil then
  return health
end
local generation = obj.metadata.generation
if obj.status.observedGeneration ~= nil and generation ~= nil and obj.status.observedGeneration < generation then
  health.message = "The operator has not seen the latest spec yet"
  return health
end
local ready, stalled, reconciling
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then ready = condition end
  if condition.type == "Stalled" then stalled = condition end
  if condition.type == "Reconciling" then reconciling = condition end
end
if stalled ~= nil and stalled.status == "True" then
  health.status = "Degraded"
  health.message = stalled.message ~= "" and stalled.message or stalled.reason
elseif ready ~= nil and ready.status == "False" and ready.reason == "Stopped"
    and (reconciling == nil or reconciling.status ~= "True") then
  -- A Channel with spec.state Stopped, scaled to zero: asked for, not broken.
  health.status = "Suspended"
  health.message = ready.message ~= "" and ready.message or ready.reason
elseif ready ~= nil and ready.status == "True" then
  health.status = "Healthy"
  health.message = ready.message ~= "" and ready.message or ready.reason
elseif ready ~= nil then
  health.message = ready.message ~= "" and ready.message or ready.reason
end
return health
